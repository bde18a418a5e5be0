"""Static mode: the evidence a repository holds (rendered manifests, a Terraform plan, an ARM template),
shaped exactly like the live snapshot so the same checks judge it. No socket is ever opened."""
