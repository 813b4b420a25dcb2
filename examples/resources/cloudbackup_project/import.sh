# A project is imported by its ID.
terraform import cloudbackup_project.example 6b06bcc8c261dbee40491bdc
