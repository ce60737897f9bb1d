"""Lava processes of spikelfp's own (kept alone in this package: Lava's model discovery imports
every module beside a process's module)."""
