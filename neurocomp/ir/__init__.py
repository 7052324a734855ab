"""The two IRs: the network-level Graph and the hardware-level Netlist."""
