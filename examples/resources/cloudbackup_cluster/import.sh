# A cluster is imported by PROJECT_ID/NAME.
terraform import cloudbackup_cluster.example 6b06bcc8c261dbee40491bdc/payments-db
