"""The end-to-end demo: the add-on server and a real Home Assistant, wired together on loopback."""
