"""Hosts on other platforms, each a thin adapter: a platform's event -> deliveries ->
`pipeline.definition.run_stage` -> what it returns sent on (`aws_lambda`, with its event parsing
in `aws_events`; `openfaas`), and Ray (`ray`: the batch's actors and driver, the stage actors of
`up --engine ray`)."""
