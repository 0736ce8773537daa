"""The match operator: one match-server pod per `Match` custom resource.

`crd` (the CRD, generated from the catalogue), `settings` (TRADEARENA_OPERATOR_*),
`ports` and `builders` (pure: host ports, pod spec, reconcile decisions), `kube`
(the only module that talks to the Kubernetes API), `runtime` (reconcile loop
state), `handlers` (thin kopf handlers) and `main` (`tradearena operator`).
"""
