# The backup of a cluster is imported by PROJECT_ID/CLUSTER_NAME.
terraform import cloudbackup_cluster_backup.example 6b06bcc8c261dbee40491bdc/payments-db
