import journal from './meta/_journal.json';
import m0000 from './0000_create_shards.sql';
import m0001 from './0001_add_grads_hash.sql';

  export default {
    journal,
    migrations: {
      m0000,
m0001
    }
  }
  