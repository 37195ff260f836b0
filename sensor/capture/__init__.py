"""Packet sources: capture files (pcap, pcapng, also gzip-compressed) read into `Packet`s."""

from sensor.capture.pcapfile import HEAD_BYTES, is_capture, read_packets

__all__ = ["HEAD_BYTES", "is_capture", "read_packets"]
