"""Serverless hosts: thin adapters that turn a platform's event into deliveries, run the
stage (`pipeline.definition.run_stage`) and send what it returns (`aws_lambda`, with its event
parsing in `aws_events`)."""
