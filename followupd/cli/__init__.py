"""The command line: parse the arguments, call the layers below, print what they return."""
