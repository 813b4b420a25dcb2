# An on-demand snapshot is imported by PROJECT_ID/CLUSTER_NAME/SNAPSHOT_ID.
terraform import cloudbackup_snapshot.before_migration 6b06bcc8c261dbee40491bdc/payments-db/6b06bcc9c261dbee40491bdf
