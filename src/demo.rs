//! `dabba demo`: a simulated city driving the server through its public API.
//! (Filled in below.)

#[derive(clap::Args, Clone, Debug)]
pub struct CityConfig {
    /// Restaurants in the city.
    #[arg(long, default_value_t = 20)]
    pub restaurants: usize,
    /// Riders on the road.
    #[arg(long, default_value_t = 60)]
    pub riders: usize,
    /// New orders per second.
    #[arg(long, default_value_t = 1.0)]
    pub orders_per_sec: f64,
}

pub async fn run(_base: String, _secret: String, _city: CityConfig) {}
