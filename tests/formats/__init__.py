"""Tests of the pure request formats, notices and placeholder restoration."""
