"""The single-page web UI (index.html), served at GET / by facereel.http."""
