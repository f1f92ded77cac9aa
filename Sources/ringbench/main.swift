print("ringbench: not yet")
