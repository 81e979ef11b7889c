"""Operations behind the REST API, the CLI and ``shepherd up``: each a short story over the stores.

Services speak to the stores and to agent runtimes, never to HTTP; the API turns their results
and errors into responses.
"""
