package noassets

//flowstone:config
type Settings struct{}
