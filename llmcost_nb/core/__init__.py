"""What everything else is built on: the Call (one attempt), money, time, the call columns, warnings."""
