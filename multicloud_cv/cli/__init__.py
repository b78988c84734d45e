"""The ``mcv`` command line. Modules here import only click and the standard library at load."""
