"""SRVAE and SRCNN image super-resolution for cellzoo, and the image sets they train on."""
