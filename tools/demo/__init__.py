"""The local demo: a workspace with one emulator account per platform (`make run`) and a batch of
demo content with a live status table (`make demo`); `api` is the HTTP client the e2e tests share."""
