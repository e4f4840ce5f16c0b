"""Offline checks of the deployment artefacts: Helm chart, Dockerfile, docker-compose stack."""
