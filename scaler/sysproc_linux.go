package scaler

import "syscall"

// workerSysProcAttr has Linux signal a worker when the thread that started
// it dies, so that workers never outlive a scaler that was killed outright.
func workerSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
