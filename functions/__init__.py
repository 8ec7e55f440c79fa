"""Thin Lambda entry points. Each subfolder is one function's CodeUri in template.yaml."""
