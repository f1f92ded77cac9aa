// RingBenchKit: see Transports/, Workloads/, Report/.
