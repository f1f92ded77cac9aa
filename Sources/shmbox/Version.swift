/// The version `shmbox --version` prints. Change it here only.
let shmboxVersion = "0.9.0"
