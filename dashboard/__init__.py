"""The Streamlit dashboard over profile runs (installed as ``rrweb_dali.dashboard``).

``app.py`` is the page Streamlit runs (``rrweb-dali dashboard RUNS``); ``data.py`` reads and
summarises run folders, ``charts.py`` draws them. Importing this package imports neither.
"""
