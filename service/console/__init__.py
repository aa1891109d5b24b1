"""The web console: server-rendered pages over the API's catalog, history, explain and dead letters."""
