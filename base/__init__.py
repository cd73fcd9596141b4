"""The shared base, at the bottom of the import map: what every layer above may use.

- :mod:`base.errors`: the domain errors services raise (``InvalidField``, ``NotFound``, ...);
- :mod:`base.http`: the API's JSON errors, the one translation of domain errors into
  responses, method and path helpers, body parsing;
- :mod:`base.text`: the rule for a display name (nicknames, board and player names);
- :mod:`base.ids`: row ids as clients and operators send them (board and player ids in URLs,
  ``?before=``, message ids on the command line);
- :mod:`base.env`: reading settings from the environment.

It imports Django and the standard library only, never a package of this
project (tests/test_project.py checks it).
"""
