"""The admin API (Flask): the app, authentication, errors, request helpers and the routes."""
