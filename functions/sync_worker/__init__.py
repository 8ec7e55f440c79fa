"""SyncWorkerFunction."""
