"""Publishes due posts to one platform (or several in local mode) without ever posting twice."""
