// Module heketi builds the real heketi server and heketi-cli (v10.3.0) that
// the tests and benchmarks run against. It is a module of its own because
// heketi has no go.mod and needs an old client-go.
module github.com/glusterkube/glusterkube/hack/heketi

go 1.26.0

require github.com/heketi/heketi v10.3.0+incompatible

require (
	github.com/asaskevich/govalidator v0.0.0-20230301143203-a9d515a09cc2 // indirect
	github.com/auth0/go-jwt-middleware v0.0.0-20200507191422-d30d7b9ece63 // indirect
	github.com/boltdb/bolt v1.3.1 // indirect
	github.com/form3tech-oss/jwt-go v3.2.5+incompatible // indirect
	github.com/go-ozzo/ozzo-validation v3.6.0+incompatible // indirect
	github.com/gorilla/mux v1.8.1 // indirect
	github.com/lpabon/godbc v0.0.0-00010101000000-000000000000 // indirect
	github.com/prometheus/client_golang v1.25.0 // indirect
	github.com/spf13/cobra v1.10.2 // indirect
	github.com/urfave/negroni v1.0.0 // indirect
	golang.org/x/crypto v0.59.0 // indirect
	k8s.io/api v0.17.5 // indirect
	k8s.io/apimachinery v0.17.5 // indirect
	k8s.io/client-go v0.0.0-00010101000000-000000000000 // indirect
)

replace (
	github.com/lpabon/godbc => ./godbc
	k8s.io/api => k8s.io/api v0.17.5
	k8s.io/apimachinery => k8s.io/apimachinery v0.17.5
	k8s.io/client-go => k8s.io/client-go v0.17.5
)
