"""Layer 1, repository sync: did we dispatch the new commit?

The four triggers (`webhook`, `github_actions`, `polling`, `manual`) verify what arrives and put a
sync job on the one sync-job queue (`queue`); the sync worker runs it (`run.run_sync_job` →
`sync_applications`), resolving each branch's commit once (`resolvers`) and handing every
application that needs it a deploy request (layer 2, `ferry.deploy`). The repository's
`sync_status` is written only through `status.update_repository_status`.
"""
