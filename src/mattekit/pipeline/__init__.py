"""Streaming pipelines: frames in, recurrent network, outputs written."""
