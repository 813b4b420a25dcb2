# A restore job is imported by PROJECT_ID/CLUSTER_NAME/JOB_ID (the cluster the snapshot was taken of).
terraform import cloudbackup_restore_job.to_staging 6b06bcc8c261dbee40491bdc/payments-db/6b06bccac261dbee40491be2
