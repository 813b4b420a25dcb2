resource "cloudbackup_project" "example" {
  name = "payments"
}
