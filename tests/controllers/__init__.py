"""Tests of the operator's pure decisions: plain values and a fixed clock, no cluster."""
