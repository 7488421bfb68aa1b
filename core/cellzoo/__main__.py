"""``python -m cellzoo`` runs the command line."""

from cellzoo.cli import main

if __name__ == "__main__":
    main(prog_name="cellzoo")
