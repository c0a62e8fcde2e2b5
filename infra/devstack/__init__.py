"""The local stack: DynamoDB Local, localstripe and a gateway that serves template.yaml's HTTP API
by invoking the handlers in-process exactly as API Gateway would. Everything is derived from
template.yaml, the one description of the deployment."""
