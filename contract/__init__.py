"""The contract both sides read: the JSON Schemas in contract/schemas/, shipped as package data."""
