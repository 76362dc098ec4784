//! Which registries may be spoken to without verified TLS (docker's `insecure-registries`).

use std::net::IpAddr;

/// Whether `registry` may be spoken to without verified TLS. `$LAMINA_INSECURE_REGISTRIES`
/// (comma- or space-separated `host[:port]` names and CIDR ranges) replaces the default, which is
/// docker's: the loopback range `127.0.0.0/8` (and `::1`, and `localhost`, which resolves there).
pub fn is_insecure_registry(registry: &str) -> bool {
    let list = std::env::var("LAMINA_INSECURE_REGISTRIES")
        .unwrap_or_else(|_| "127.0.0.0/8,::1/128,localhost".into());
    insecure_in(&list, registry)
}

fn insecure_in(list: &str, registry: &str) -> bool {
    let host = host_of(registry);
    let ip: Option<IpAddr> = host.parse().ok();
    list.split([',', ' ', '\t', '\n'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| {
            if entry == registry || entry == host {
                return true;
            }
            match (entry.split_once('/'), ip) {
                (Some((net, bits)), Some(ip)) => in_cidr(ip, net, bits),
                _ => false,
            }
        })
}

/// `127.0.0.1:5000` -> `127.0.0.1`, `[::1]:5000` -> `::1`, `localhost` -> `localhost`.
fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match registry.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => registry,
    }
}

fn in_cidr(ip: IpAddr, net: &str, bits: &str) -> bool {
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
#[path = "insecure_tests.rs"]
mod tests;
