"""Other sensors' outputs as input (issue "Beside Zeek and Suricata"): Zeek's logs and extract_files/, Suricata's
eve.json and file-store v2. A layer beside capture/: where capture gives packets that the flow and protocol
layers turn into objects, a bridge reads objects another sensor already cut out, with what its logs say about
them (connection, direction, protocol, names, its own ids), and the flows it logged."""
