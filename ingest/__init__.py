"""Readers turning source files into harmonised `PatientRecord`s; the cohort store."""
