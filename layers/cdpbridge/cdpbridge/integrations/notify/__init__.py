"""Notify: send each user a Braze campaign at the local hour they are most likely to engage.

- ``hashing``: the opt-in export's user key (SHA-256 of the trimmed, lower-cased e-mail).
- ``observations``: the model's input (one engagement event at a local hour of week), fed by the
  opt-in export and by the Currents engagement profiles alike.
- ``optin``: the opt-in export CSV into typed events, bad rows into rejects.
- ``model``: the send-time model (hierarchical empirical-Bayes smoothing, recency weighting); pure.
- ``fitting``: its hyperparameters fitted on the history (method of moments, held-out likelihood).
- ``program``: PROGRAM.yaml.
- ``planner``: users and their history into plan rows (external_id, send_at, local_time, basis).
"""
