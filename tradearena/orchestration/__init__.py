"""The one orchestration contract: start a match server for a match, report its
phase and address, cancel it. Two implementations share the phase machine:
local processes (embedded default, tests) and Kubernetes (Match CR + operator)."""
