"""The one orchestration contract: start a match server for a match, report its
phase and address, cancel it. Two implementations share the phase machine:
local processes (`tradearena.launcher.localruntime`: the embedded default and
tests; it spawns processes, so it lives with the launcher) and Kubernetes
(`kubernetes.py`: Match CR + operator)."""
