# Builds one image per role from the shared Dockerfile, tagged
# ${REGISTRY}/faas-<role>:${TAG}, which is the name deploy/deployment.cue
# gives Kumori (its _image.registry and _image.tag must match):
#
#   REGISTRY=registry.example.org/team TAG=0.1.0 docker buildx bake --push

# Registry host, then the namespace the images live under.
variable "REGISTRY" {
  default = "localhost:5000/faas"
}

variable "TAG" {
  default = "latest"
}

# A directory holding the kumorictl executable, copied into the scaler
# image; empty leaves kumorictl out.
variable "KUMORICTL_DIR" {
  default = ""
}

group "default" {
  targets = ["frontend", "dbmanager", "jqmanager", "worker", "scaler"]
}

# Shared by every role; the build stage is built once for all of them.
target "_faas" {
  context    = "."
  dockerfile = "Dockerfile"
}

target "frontend" {
  inherits = ["_faas"]
  target   = "frontend"
  tags     = ["${REGISTRY}/faas-frontend:${TAG}"]
}

target "dbmanager" {
  inherits = ["_faas"]
  target   = "dbmanager"
  tags     = ["${REGISTRY}/faas-dbmanager:${TAG}"]
}

target "jqmanager" {
  inherits = ["_faas"]
  target   = "jqmanager"
  tags     = ["${REGISTRY}/faas-jqmanager:${TAG}"]
}

target "worker" {
  inherits = ["_faas"]
  target   = "worker"
  tags     = ["${REGISTRY}/faas-worker:${TAG}"]
}

target "scaler" {
  inherits = ["_faas"]
  target   = "scaler"
  tags     = ["${REGISTRY}/faas-scaler:${TAG}"]
  contexts = KUMORICTL_DIR != "" ? { kumorictl = KUMORICTL_DIR } : {}
}
