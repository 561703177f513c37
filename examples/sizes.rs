fn main() {
    println!(
        "Connection {}",
        std::mem::size_of::<sluice::tcp::Connection>()
    );
    println!("Ring {}", std::mem::size_of::<sluice::tcp::buffer::Ring>());
    println!(
        "Assembler {}",
        std::mem::size_of::<sluice::tcp::buffer::Assembler>()
    );
    println!(
        "NewReno {}",
        std::mem::size_of::<sluice::tcp::cc::NewReno>()
    );
    println!(
        "Rtt {}",
        std::mem::size_of::<sluice::tcp::rtt::RttEstimator>()
    );
    println!(
        "FourTuple {}",
        std::mem::size_of::<sluice::tcp::FourTuple>()
    );
    println!(
        "ConnStats {}",
        std::mem::size_of::<sluice::tcp::ConnStats>()
    );
}
