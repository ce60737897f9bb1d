from spikelfp.cli import console_main

console_main()
