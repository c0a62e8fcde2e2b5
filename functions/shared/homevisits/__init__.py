"""Shared code of the home-visit backend: configuration, errors, auth, travel model, persistence.

Light by design (shipped to every function): no OR-Tools, no Stripe.
"""
