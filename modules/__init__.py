"""LightningModules of the Niveshi workloads, and the errors shared by the whole project."""
